"""The profiling session: ``profile()`` lifecycle and step, its schedule, step-signature counting, ``pyprof run``,
distributed gathering and trainer integrations. A session drives the sources and hands typed records to accounting."""
