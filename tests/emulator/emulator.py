#!/usr/bin/env python3
"""flamefire's local AWS emulator for tests: moto server plus the Run Command
pieces moto lacks.

The entry point start.sh runs (`emulator.py --port P --dir D ...`); the code is
the `emu` package beside this file (see emu/__init__.py and README.md).
"""

from emu.server import main

if __name__ == "__main__":
    main()
