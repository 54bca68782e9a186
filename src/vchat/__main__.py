"""Allow `python -m vchat`."""

from vchat.entry import main

main()
