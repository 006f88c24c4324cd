"""`ShouldersError`: the one base of every error a user can fix.

Each subclass's message names the problem (the option, file or folder) and the fix. The CLI catches
this class alone and prints the message as one red line with exit code 2; anything else is a bug and
keeps its traceback. Subclasses also derive from the builtin they refine (``ValueError``,
``FileNotFoundError``...), so ``except ValueError`` in a user's code keeps working.
"""

from __future__ import annotations


class ShouldersError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""
