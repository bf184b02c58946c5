"""One module per ``churnwatch`` subcommand: ``HELP``, ``add_arguments(parser)``, ``run(args)``."""


def write_or_check(path, text: str, command: str, check: bool, what: str) -> int:
    """Write a generated file, or with ``check`` exit 1 when the committed one is stale."""
    if check:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is out of date; run `churnwatch {command}`")
            return 1
        print(f"{path} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path} ({what})")
    return 0
