"""``bambu-lan serve``: the farm daemon."""
