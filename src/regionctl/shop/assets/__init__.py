"""assets: the product images (SVG drawn by the project, under ``images/``), served like the reference's nginx."""
