"""The commune's stream hub (Icecast 2): relays of national and provincial radio, and the
listener checks that keep them for the station's own devices (see hub.py)."""
