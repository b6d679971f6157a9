"""The Gradio page: layout.py composes it from the tabs (tabs/), each answering with the models served
(served.py); image_files.py writes the pictures it sends."""
