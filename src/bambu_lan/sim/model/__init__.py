"""The parts of the simulated printer's firmware (``bambu_lan.sim.printer.PrinterModel``).

Split the way pyatv's fake device keeps state, services and use cases apart; data flows
one way, from the verbs and handlers through the state to the reports:

``state.py``      ``ModelState``: the live ``print`` object, the keys changed since the last
                  push, the SD card, the job, counters; the mutations everyone shares (``set``,
                  ``touch``, job start/pause/resume/end, trays, HMS). No I/O.
``physics.py``    ``Physics``: what moves by itself with simulated time (heaters, chamber,
                  fans, Wi-Fi, job progress through PREPARE → stages → layers → FINISH).
``pushes.py``     ``Reports``: full reports, deltas and replies as bytes, the push cadence and
                  sequence ids; calls the owner's ``publish``.
``handlers.py``   ``CommandHandlers``: decodes ``/request`` payloads, checks Developer Mode,
                  dispatches ``(class, command)`` through a table to one method each.
``gcode.py``      the G-code subset of ``print.gcode_line``, one interpreter per word.
``scenarios.py``  ``ScenarioVerbs``: test and demo verbs (``start_print``,
                  ``run_out_of_filament``, ``raise_hms``, ``set_tray`` …).

``PrinterModel`` (in ``sim/printer.py``) assembles them, runs the clock and lets callers
await state. New commands go into ``handlers.py``, new verbs into ``scenarios.py``, new
report keys into ``sim/report.py`` (built once, changed through ``ModelState``).
"""
