"""Network definitions: the shared VAE wrapper and the encoders/decoders of E1-E3."""
