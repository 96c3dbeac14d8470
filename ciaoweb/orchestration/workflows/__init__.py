"""One module per workflow (provision, migrate, delete, evacuate), each driving its
Operation row step by step; `steps` holds what they share."""
