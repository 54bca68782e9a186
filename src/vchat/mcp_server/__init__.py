"""`vchat mcp`: every vchat tool served over the Model Context Protocol (the official `mcp` SDK, imported lazily)."""
