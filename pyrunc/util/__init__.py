"""Small helpers below every layer: JSON through the C accelerator (jsonutil), pid files."""
