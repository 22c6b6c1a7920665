"""The state store: the job model (pure), settings, where a workspace's state lives, the
inter-process lock, crash-safe file I/O, the index and job files, retention.

Everything on disk goes through here, and nothing else in jobgate writes a state dir's
files directly. It is the bottom of the house: it imports nothing of jobgate outside
``jobgate.state``.
"""
