"""The conversation's parts: typed steps, one tool-call path, both protocols, prompts, history, binding, vision."""
