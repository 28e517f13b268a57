"""Who is signed in to the add-in server.

``identity(user) -> Identity(id, name, teacher)`` is what the rest of the server asks (module ``identities``).
The pieces: ``names`` (user ids as folder names), ``tokens`` (class codes and their hashes), ``roster``
(the class list file), ``classtoken`` (the xlwings auth provider for class codes), ``entra`` (Microsoft
Entra ID's settings and user ids), ``providers`` (hands the providers to xlwings Server), ``routes``
(``/gradsheet/me`` for the task pane), ``cli`` (``python -m excel_addin.server class ...``).
"""

from excel_addin.server.auth.identities import LOCAL, Identity, NotSignedInError, identity
from excel_addin.server.auth.names import LOCAL_ID

__all__ = ["LOCAL", "LOCAL_ID", "Identity", "NotSignedInError", "identity"]
