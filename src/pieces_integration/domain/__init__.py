"""The domain core: plain data and pure decisions. No I/O, no framework imports."""
