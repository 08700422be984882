"""Test helpers shared by the suites: doubles, clients, factories, waiting and the fixture files.

Test modules and conftest files import their helpers from here; no module imports a conftest.
"""
