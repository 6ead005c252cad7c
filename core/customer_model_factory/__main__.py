"""``python -m customer_model_factory`` runs the ``cmf`` command line."""

from customer_model_factory.cli import main

if __name__ == "__main__":
    main()
