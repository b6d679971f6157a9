"""The Gradio page: layout.py composes it from the tabs (tabs/, one module each: controls, handlers, drawing), every
tab asking the models served (served.py, built once at start-up). endpoints.py is the one table of endpoints, from
which the events, the ZeroGPU requests and the API's reference are derived; controls.py holds the checks the tabs
share, image_files.py the files the pictures are sent from."""
