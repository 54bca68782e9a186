"""An example vchat plugin: a model-free tool and one that runs a model through vchat's runtime."""
