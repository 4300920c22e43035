"""What the Python services share: configuration, the manifest, decoding, the error contract and the app."""
