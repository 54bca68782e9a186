"""What a session keeps on disk: images, image files, the transcript and the sessions index."""
