// placeholder, built by ClientApp/build.sh
