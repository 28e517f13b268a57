Attribute VB_Name = "gradsheet"
' gradsheet: the macros behind the workbook's buttons. Each one hands over to Python through xlwings'
' RunPython (module xlwings in this project), which works on Windows and macOS. The Python side is
' excel_addin/macros.py; Python finds the package because xlwings adds this workbook's folder to
' PYTHONPATH (or because gradsheet is pip-installed).
Option Explicit

' Train the MNIST CNN with the settings on the Train sheet; progress and charts appear on that sheet.
Sub Train()
    RunPython "import excel_addin.macros as m; m.train()"
End Sub

' Ask a running training to stop after the current batch (the run's files stay complete).
' ("Stop" itself is a VBA statement, hence the longer name.)
Sub StopTraining()
    RunPython "import excel_addin.macros as m; m.stop()"
End Sub

' Recompute the Backprop sheet's loss grid with the Python engine from the sheet's inputs.
Sub RefreshBackprop()
    RunPython "import excel_addin.macros as m; m.refresh_backprop()"
End Sub

' ---- Classify sheet: the drawing grid and what the network sees ----

' Write a random MNIST test digit into the drawing grid (its number and label beside the grid).
Sub RandomTestDigit()
    RunPython "import excel_addin.macros as m; m.random_test_digit()"
End Sub

' Empty the drawing grid, to draw a digit of your own (1 = ink).
Sub ClearGrid()
    RunPython "import excel_addin.macros as m; m.clear_grid()"
End Sub

' Draw what the network sees in the chosen image (a row number, or grid): filters, feature maps, evidence.
Sub WhatTheNetworkSees()
    RunPython "import excel_addin.macros as m; m.what_the_network_sees()"
End Sub
