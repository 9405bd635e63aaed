"""On-device sensor calibration: a seeded barometer simulator (sensor.py) for learning a drift correction."""
