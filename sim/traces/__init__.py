"""Request traces: the columnar table, synthetic traffic, public formats, transforms, checks."""
