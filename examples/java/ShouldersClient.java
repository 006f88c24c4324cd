// A client of the TF-Serving REST API that `shoulders serve` speaks, in plain Java 17 (java.net.http,
// no dependencies). Compile and run:
//   javac -d out examples/java/ShouldersClient.java
//   java -cp out ShouldersClient http://127.0.0.1:8000 photo.jpg [more.jpg ...]
// Options: --pixels W H (send each image as a row-format pixel array of that size instead of base64
// bytes: the server's own preprocessing then sees pixels, the way a camera pipeline would send them),
// --api-key KEY (or the SHOULDERS_API_KEY environment variable), --model NAME (default "default").
// Prints the model status, then one line per image: "<file>\t<label>\t<probability>". A request the
// server refuses prints its status and JSON error body, and the program exits 1.

import java.awt.image.BufferedImage;
import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.imageio.ImageIO;

public final class ShouldersClient {
    private static final Pattern LABEL = Pattern.compile("\"labels\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"");
    private static final Pattern PROBABILITIES = Pattern.compile("\"probabilities\"\\s*:\\s*\\[([^\\]]*)\\]");
    private static final Pattern STATE = Pattern.compile("\"state\"\\s*:\\s*\"([A-Z_]+)\"");

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private final String base;
    private final String model;
    private final String apiKey;

    ShouldersClient(String base, String model, String apiKey) {
        this.base = base.replaceAll("/+$", "");
        this.model = model;
        this.apiKey = apiKey;
    }

    /** GET /v1/models/NAME: "AVAILABLE" once the server has loaded the run. */
    String status() throws IOException, InterruptedException {
        HttpResponse<String> response = send(HttpRequest.newBuilder(URI.create(base + "/v1/models/" + model)).GET());
        Matcher state = STATE.matcher(response.body());
        return state.find() ? state.group(1) : response.body();
    }

    /** POST /v1/models/NAME:predict with one instance: {"b64": the file's bytes}. */
    Prediction predictBytes(Path image) throws IOException, InterruptedException {
        String encoded = Base64.getEncoder().encodeToString(Files.readAllBytes(image));
        return predict("{\"instances\": [{\"b64\": \"" + encoded + "\"}]}");
    }

    /** POST /v1/models/NAME:predict with one instance as rows of [r, g, b] pixels (0..255), resized to W x H. */
    Prediction predictPixels(Path image, int width, int height) throws IOException, InterruptedException {
        BufferedImage source = ImageIO.read(image.toFile());
        if (source == null) {
            throw new IOException(image + " is not an image Java can decode (use base64 bytes: drop --pixels)");
        }
        BufferedImage resized = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        resized.createGraphics().drawImage(source.getScaledInstance(width, height, java.awt.Image.SCALE_SMOOTH), 0, 0, null);
        StringBuilder rows = new StringBuilder("[");
        for (int y = 0; y < height; y++) {
            rows.append(y == 0 ? "[" : ",[");
            for (int x = 0; x < width; x++) {
                int rgb = resized.getRGB(x, y);
                rows.append(x == 0 ? "" : ",").append('[').append((rgb >> 16) & 255).append(',')
                    .append((rgb >> 8) & 255).append(',').append(rgb & 255).append(']');
            }
            rows.append(']');
        }
        return predict("{\"instances\": [" + rows.append(']') + "]}");
    }

    private Prediction predict(String body) throws IOException, InterruptedException {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(base + "/v1/models/" + model + ":predict"))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body));
        HttpResponse<String> response = send(request);
        Matcher label = LABEL.matcher(response.body());
        Matcher probabilities = PROBABILITIES.matcher(response.body());
        if (!label.find() || !probabilities.find()) {
            throw new ServerError(response.statusCode(), "no prediction in the answer: " + response.body());
        }
        double best = 0;
        for (String value : probabilities.group(1).split(",")) {
            best = Math.max(best, Double.parseDouble(value.trim()));
        }
        return new Prediction(label.group(1), best);
    }

    private HttpResponse<String> send(HttpRequest.Builder request) throws IOException, InterruptedException {
        if (apiKey != null && !apiKey.isEmpty()) {
            request.header("X-API-Key", apiKey);
        }
        HttpResponse<String> response = http.send(request.timeout(Duration.ofSeconds(60)).build(), HttpResponse.BodyHandlers.ofString());
        if (response.statusCode() != 200) {
            throw new ServerError(response.statusCode(), response.body());  // {"error": "what to send instead"}
        }
        return response;
    }

    record Prediction(String label, double probability) {}

    static final class ServerError extends IOException {
        final int status;

        ServerError(int status, String body) {
            super("HTTP " + status + ": " + body);
            this.status = status;
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: ShouldersClient URL IMAGE... [--pixels W H] [--api-key KEY] [--model NAME]");
            System.exit(2);
        }
        String model = "default";
        String apiKey = System.getenv("SHOULDERS_API_KEY");
        int width = 0;
        int height = 0;
        List<Path> images = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            switch (args[i]) {
                case "--pixels" -> { width = Integer.parseInt(args[++i]); height = Integer.parseInt(args[++i]); }
                case "--api-key" -> apiKey = args[++i];
                case "--model" -> model = args[++i];
                default -> images.add(new File(args[i]).toPath());
            }
        }
        ShouldersClient client = new ShouldersClient(args[0], model, apiKey);
        try {
            System.out.println("status\t" + client.status());
            for (Path image : images) {
                Prediction prediction = width > 0 ? client.predictPixels(image, width, height) : client.predictBytes(image);
                System.out.printf("%s\t%s\t%.6f%n", image, prediction.label(), prediction.probability());
            }
        } catch (ServerError error) {
            System.out.println("error\t" + error.status + "\t" + error.getMessage());
            System.exit(1);
        }
    }
}
