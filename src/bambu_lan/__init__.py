"""bambu-lan: talk to Bambu Lab printers on the local network."""
