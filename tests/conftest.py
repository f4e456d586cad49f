pytest_plugins = ("tests.integration.shop.fixtures",)
