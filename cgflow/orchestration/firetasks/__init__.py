"""Firetasks: resolve the context, call a stage (:mod:`cgflow.stages`), store its
documents, return an FWAction. No science here."""
