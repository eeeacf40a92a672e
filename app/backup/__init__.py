"""`loaxa backup` and `loaxa restore`: one archive holding the database, the audio it names
and the secret key, with a manifest of sha256 sums (archive.py: the format; service.py:
what goes in and how it comes back)."""
