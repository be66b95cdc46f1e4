"""The models. Pure: no database, no clock of their own, no network; each one can be pickled."""
