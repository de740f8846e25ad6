"""Media: uploads, media named by URL (fetched safely), and lip-sync jobs."""
