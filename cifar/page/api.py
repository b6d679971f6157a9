"""The API's reference, read from the endpoint table (docs/api.md holds it; tests/test_endpoints.py checks it is
current):

    python -m cifar.page.api
"""

from cifar.page.endpoints import markdown
from cifar.page.layout import TABS_WITH_ENDPOINTS


def main():
    print(markdown(TABS_WITH_ENDPOINTS), end="")


if __name__ == "__main__":
    main()
