from openfish.cli import main

main()
