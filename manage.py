#!/usr/bin/env python
"""Django's command-line utility for Warden."""

import os
import sys


def main() -> None:
    env = os.environ.get("DJANGO_ENV", "dev")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", f"governance.settings.{env}")
    if len(sys.argv) > 1 and sys.argv[1] == "report":
        # A report from files without a PDF needs the engine alone: run it without starting
        # Django (same output, same exit code); anything else falls through to Django.
        from governance.reports.cli import run_from_files

        code = run_from_files(sys.argv)
        if code is not None:
            sys.exit(code)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
