"""The conversation's parts: both protocols, prompts, history, binding and vision."""
