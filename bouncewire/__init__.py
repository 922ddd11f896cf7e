"""bouncewire: SMTP send results and unsubscribes, through Kafka, to CleverTap's callbacks.

The version has one source, pyproject.toml, read back from the installed package's metadata.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bouncewire")
except PackageNotFoundError:  # a checkout on sys.path that was never installed
    __version__ = "0+unknown"
