using MediatorDiT.IO;

namespace MediatorDiT.Data;

/// <summary>
/// The files of a folder of class sub-folders of images, as torchvision's ImageFolder lists them: class c
/// is the c-th sub-folder name in ordinal order; its files are all *.png, *.jpg, *.jpeg and *.webp (any
/// letter case, so ImageNet's *.JPEG too; <see cref="ImageFile.Extensions"/>) below it, nested folders
/// included, folders by full path then files by name (ordinal).
/// </summary>
public sealed record ImageFolderListing(string Root, IReadOnlyList<string> ClassNames, IReadOnlyList<(string Path, int Label)> Files)
{
    /// <summary>Lists <paramref name="folder"/>'s class sub-folders and their image files.</summary>
    /// <param name="folder">The folder of class sub-folders.</param>
    /// <exception cref="MediatorDiTException">The folder does not exist, has no sub-folders, or a class folder holds no image.</exception>
    public static ImageFolderListing Read(string folder)
    {
        if (!Directory.Exists(folder))
            throw new MediatorDiTException($"{folder}: the image folder does not exist (expected a folder with one sub-folder of images per class).");
        string root = Path.GetFullPath(folder);
        string[] classNames = Directory.GetDirectories(root).Select(d => Path.GetFileName(d)!).Order(StringComparer.Ordinal).ToArray();
        if (classNames.Length == 0)
            throw new MediatorDiTException($"{folder}: has no sub-folders, but an image folder holds one sub-folder of images ({ImageFile.ExtensionList} files) per class.");

        var files = new List<(string Path, int Label)>();
        var emptyClasses = new List<string>();
        for (int c = 0; c < classNames.Length; c++)
        {
            var classFiles = ImageFilesBelow(Path.Combine(root, classNames[c]));
            if (classFiles.Count == 0) emptyClasses.Add(classNames[c]);
            files.AddRange(classFiles.Select(f => (f, c)));
        }
        if (emptyClasses.Count > 0)
            throw new MediatorDiTException($"{folder}: class folder{(emptyClasses.Count > 1 ? "s" : "")} {string.Join(", ", emptyClasses.Take(5))} hold{(emptyClasses.Count > 1 ? "" : "s")} no {ImageFile.ExtensionList} files; every class needs at least one image.");
        return new ImageFolderListing(root, classNames, files);
    }

    /// <summary>Image files (by extension, any letter case) below <paramref name="classFolder"/>: folders by full path, then names, ordinal.</summary>
    private static List<string> ImageFilesBelow(string classFolder)
    {
        var folders = new List<string> { classFolder };
        folders.AddRange(Directory.EnumerateDirectories(classFolder, "*", SearchOption.AllDirectories));
        folders.Sort(StringComparer.Ordinal);
        var files = new List<string>();
        foreach (string f in folders)
        {
            files.AddRange(Directory.EnumerateFiles(f)
                .Where(ImageFile.HasImageExtension)
                .Order(StringComparer.Ordinal));
        }
        return files;
    }
}
