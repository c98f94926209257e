"""Entry points that do heavy work: model training, batch scoring, scheduled refreshes.

Layer: jobs. They may import ``uplift`` (torch) and run outside the web workers.
"""
