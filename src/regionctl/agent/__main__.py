"""``python -m regionctl.agent --region R``: serve one region's agent (see ``regionctl agent serve``)."""

from regionctl.agent.serve import main

main()
