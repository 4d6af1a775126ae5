"""`chorus demo`: Chorus on its embedded defaults with a scripted customer journey, no configuration."""
