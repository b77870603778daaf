"""Service providers: libraries (by ISIL), museums, sports facilities, bike parks..."""
