"""Allow `python -m vchat`."""

from vchat.cli import main

main()
