"""Download model sources into local directories: SRC_URI DEST_PATH [SRC_URI DEST_PATH ...].

The KServe controller runs this as the storage-initializer init container with argument pairs.
"""

import sys

from kserve_storage import Storage
from kserve_storage.logging import configure_logging, logger

USAGE = "usage: initializer-entrypoint SRC_URI DEST_PATH [SRC_URI DEST_PATH ...]"


def main(args: list[str]) -> int:
    if not args or len(args) % 2:
        print(USAGE, file=sys.stderr)
        return 2
    configure_logging()
    sources, destinations = args[0::2], args[1::2]
    try:
        Storage.download_files(sources, destinations)
    except Exception as error:
        # Whatever the storage backend raised, the init container ends with a reason.
        logger.error("storage initialization failed: %s: %s", type(error).__name__, error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
