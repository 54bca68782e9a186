"""Generation and editing tools (the diffusion family) and their shared plumbing."""
