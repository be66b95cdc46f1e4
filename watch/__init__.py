"""The AreaWatch application: wires data, detectors and notify into jobs, commands and pages."""
