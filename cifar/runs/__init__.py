"""A run folder, the unit everything else exchanges: training writes one, the page and the measuring commands read
it, the Hub stores it. Its files are listed in folder.py; card.py writes its model card, plots.py its figures."""
