"""`vchat batch`: one tool or one request over many images, on this machine or a Ray cluster."""
