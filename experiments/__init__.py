"""liftlab's domain core: assignment, statistics, analysis, strategy, database, services, jobs, CLI.

Importing the package itself is cheap; each subpackage pulls in only what it needs.
"""

__version__ = "0.1.0"
