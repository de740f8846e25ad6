"""Settings for one openfish deployment.

Everything is read from the environment (prefix ``OPENFISH_``, ``__`` for nesting, e.g.
``OPENFISH_DATABASE__URL``) or passed explicitly to :class:`Settings`. Nothing here is read at
import time: :func:`openfish.app.create_app` receives a ``Settings`` instance.

The section models live in :mod:`openfish.config.sections` (the speech engines' in
:mod:`openfish.config.speech`), the root :class:`Settings` and the
signing-key parsing in :mod:`openfish.config.settings`; import them all from here.
"""

from openfish.config.sections import (
    LEGACY_DEPRECATED_ON,
    BootstrapSettings,
    DatabaseSettings,
    HttpSettings,
    JobSettings,
    LimitsSettings,
    MediaFetchSettings,
    RetentionSettings,
    StorageSettings,
    SurfaceSettings,
    TierSettings,
    WebhookSettings,
)
from openfish.config.settings import MIN_SIGNING_KEY_BYTES, Settings, decode_signing_key
from openfish.config.speech import (
    AsrSettings,
    LipSyncSettings,
    RealtimeSettings,
    TtsSettings,
    VersionProfile,
    VoiceSettings,
)

__all__ = [
    "LEGACY_DEPRECATED_ON",
    "MIN_SIGNING_KEY_BYTES",
    "AsrSettings",
    "BootstrapSettings",
    "DatabaseSettings",
    "HttpSettings",
    "JobSettings",
    "LimitsSettings",
    "LipSyncSettings",
    "MediaFetchSettings",
    "RealtimeSettings",
    "RetentionSettings",
    "Settings",
    "StorageSettings",
    "SurfaceSettings",
    "TierSettings",
    "TtsSettings",
    "VersionProfile",
    "VoiceSettings",
    "WebhookSettings",
    "decode_signing_key",
]
