"""Processes: identity (capture, probe, pid namespaces), a job's process tree and
signalling it, and starting a command held at a gate.

This package owns every question put to the operating system about a process, so it is
where the platform seam lives (one backend per OS family behind one face). It may import
``jobgate.state`` for the mark names, paths and errors, and nothing else of jobgate.
"""
