"""gradsheet's own HTTP routes beside xlwings Server's: ``classroom`` (the pane's status, a teacher's view of
the class) and ``calls`` (cell calls measured and converted off the event loop, in place of xlwings
Server's route of the same URL). Sign-in's route is ``server/auth/routes.py``."""
