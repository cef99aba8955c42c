"""The printers' protocol as pure functions and data: no sockets, no clocks to wait on."""
